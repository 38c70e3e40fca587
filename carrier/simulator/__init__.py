"""The carrier simulator: Twilio's REST API and webhooks on loopback, driven by a scenario."""

from carrier.simulator.scenario import Scenario, load_scenario
from carrier.simulator.server import CarrierSimulator

__all__ = ["CarrierSimulator", "Scenario", "load_scenario"]
