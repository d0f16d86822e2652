"""Training, data loading and generation for the reference D2M-GAN model."""
