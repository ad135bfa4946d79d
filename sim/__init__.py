"""Virtual time, a mock Keepa and measurement for the collector.

``sim.keepa`` is the server model (it owns the bucket); ``sim.runtime`` runs
the collector's coroutines on a SimPy clock; ``sim.engine`` wires one run and
``sim.recorder`` turns it into the summary that ``sim run`` prints.
"""
