"""The job spec and the op registry: pure, no I/O."""

from pixtools.jobspec.job import JobSpec, OutputSpec, SpecError, parse_spec, spec_to_builtins
from pixtools.jobspec.ops import OPS, OpDef, Step, op_of, register, unregister

__all__ = [
    "OPS",
    "JobSpec",
    "OpDef",
    "OutputSpec",
    "SpecError",
    "Step",
    "op_of",
    "parse_spec",
    "register",
    "spec_to_builtins",
    "unregister",
]
