"""Optional integrations: each module imports its framework; ``import flagstream`` imports none of them."""
