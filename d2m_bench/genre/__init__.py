"""Genre accuracy by retrieval (spec section 2): see section.py."""
