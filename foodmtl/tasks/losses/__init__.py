"""Task kinds' losses that are not one library call."""
