"""Modalities: text, image, structure embeddings, electronic charge density."""
