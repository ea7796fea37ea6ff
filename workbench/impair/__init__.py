"""Link impairment (netem, or this kernel's substitutes) and link state: see ops."""
