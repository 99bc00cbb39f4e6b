"""Our ViT, Swin and MobileViT modules (see each module's docstring for the paper)."""
