"""Everything that runs beside the code: the local stack and the simulators of the business systems."""
