"""Model and dataset card templates (Jinja, read by huggingface_hub's card machinery)."""
