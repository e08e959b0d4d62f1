"""Reference functions that preheat is measured against (never deployed by the stacks)."""
