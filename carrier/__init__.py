"""The carrier port and its adapters: the only place that knows how calls and SMS are made."""
