"""The `pingan` command."""
