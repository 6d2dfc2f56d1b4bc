"""Demand response, one package: the events' lives (one event model), the home's devices, the
customer's rule book, the control cycle (snapshot -> rules -> arbiter -> dispatch), the arbiter,
the dispatcher, the baseline and the measured load change.

``DemandResponse`` (``ems.dr.component``) is the facade the web and the integrations use.
"""
