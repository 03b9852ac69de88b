"""Customers: live RFM inputs, lifecycle stages and triggered marketing moments (docs/customers.md).

Pure logic, river-shaped like the rest of `operators/`: time is the events' `ts` and the
event clock (`clock.EventClock`), never the wall clock; state is small, picklable and bounded.
"""
