"""The ZigBee Smart Energy 1.x protocol library: clusters for zigpy and the codec.

Protocol only (zigpy and the standard library, no ``ems`` import), so that the meter link
(``zigbee_se``), the home network (``zigbee_home``) and the simulated meter (``simulator``)
all import the same cluster definitions and wire helpers legitimately.
"""
