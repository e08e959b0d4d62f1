"""One construct per capability, each with typed props (frozen dataclasses). Stacks compose them."""
