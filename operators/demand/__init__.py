"""Demand forecasting: daily net demand per SKU × location, smoothed forecasts, intervals, rising items, reorders.

Pure logic, river-shaped (`apply`/`close_day`/`forecast`): no I/O, no Bytewax, no Redis. The demand flow
(`flows/demand.py`) wires it; docs/demand.md says what each part does and how well it forecasts.
"""
