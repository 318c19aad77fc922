"""omnistream."""
