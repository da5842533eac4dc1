"""Render stage: pure chart builders (table in, chart out) and Jinja2 pages, written atomically."""
