"""Config-argument parsing shared by the configs: `--config=configs/cpu.py:grey` and friends.

`parse_arg("grey", grey=False)` -> {'grey': True}; `parse_arg("steps=500", steps=1000)`
-> {'steps': 500}. Arguments are comma-separated; a bare name sets a boolean
to True; anything not in the spec is an error that names the valid ones, so a
typo (`:gray`) cannot silently train the wrong model.
"""


def parse_arg(arg, **spec):
    values = dict(spec)
    for item in filter(None, (a.strip() for a in (arg or "").split(","))):
        name, eq, text = item.partition("=")
        if name not in spec:
            valid = ", ".join(sorted(spec)) or "none"
            raise ValueError(f"unknown config argument {name!r}; this config takes: {valid}")
        default = spec[name]
        if not eq:
            if not isinstance(default, bool):
                raise ValueError(f"config argument {name!r} needs a value ({name}=...)")
            values[name] = True
        elif isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"config argument {name}={text!r} must be true or false")
            values[name] = text.lower() in ("true", "1")
        else:
            try:
                values[name] = type(default)(text)
            except ValueError:
                raise ValueError(f"config argument {name}={text!r} is not a valid {type(default).__name__}") from None
    return values
