"""Pingan: data federation for public-safety and social-governance data in the Yangtze River Delta."""

__version__ = "0.1.0"
