"""Small pieces everything uses: the name registry and atomic writes."""
