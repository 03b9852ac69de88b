"""Merchandising on live stock: demand velocity, days of cover, transfer and markdown suggestions.

Pure logic (no I/O, no Bytewax): `velocity` (decayed demand per SKU and location),
`transfers` (the rebalancing planner), `markdown` (the price-step policy) and
`sku_merch` (one SKU's stock, demand, price and published suggestions, which
`flows/merchandising.py` keeps in shards).
"""
