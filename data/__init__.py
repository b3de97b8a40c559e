"""The embedded default models and example photos, installed with phonegrade as package data."""
