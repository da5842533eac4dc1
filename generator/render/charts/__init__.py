"""Chart builders: one pure function per chart, tidy rows in, Vega-Lite spec (dict) out.

One module per page topic; `common` holds what all of them share.
"""
