"""Training recipes (YAML) of the default models, installed as package data: `--config side-default` finds them."""
