"""Neural models of the reference D2M-GAN trainer (Jukebox-layout VQ-VAE, generator, discriminator)."""
