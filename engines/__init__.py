"""Speech engines: one :class:`engines.base.Engine` per served model, created by name."""
