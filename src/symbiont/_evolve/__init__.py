"""The constrained-generation loop: lanes, the retry ladder, traces and the background loop.

Talks to agents through the Agent protocol and to the runtime through CandidateSink; knows
nothing of how candidates are built or loaded.
"""

from symbiont._evolve._background import background_loop, in_background, run_async, run_sync
from symbiont._evolve._lane import CandidateSink, Lane, Limits, Registered, Rejected, run_lane
from symbiont._evolve._progress import Emit, emitter, staged
from symbiont._evolve._trace import AttemptTrace, EvolveInfo, StageTimings, Trace

__all__ = [
    "AttemptTrace",
    "CandidateSink",
    "Emit",
    "EvolveInfo",
    "Lane",
    "Limits",
    "Registered",
    "Rejected",
    "StageTimings",
    "Trace",
    "background_loop",
    "emitter",
    "in_background",
    "run_async",
    "run_lane",
    "run_sync",
    "staged",
]
