"""Zigbee through zigpy: the controller lifecycle, and a virtual radio with a simulated HAN.

Protocol and simulation code only; no import of `ems`, `web` or other integrations.
"""
