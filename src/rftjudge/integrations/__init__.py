"""Adapters from rftjudge judges to trainers' reward contracts, one module per trainer.

- :mod:`rftjudge.integrations.trl` — a synchronous TRL reward function (``judge.as_reward_func()``
  is the async one);
- :mod:`rftjudge.integrations.verl` — veRL's ``compute_score`` (per sample, async or sync; batch);
- :mod:`rftjudge.integrations.openrlhf` — OpenRLHF's ``reward_func`` file and remote reward server;
- :mod:`rftjudge.integrations.verifiers` — verifiers' classic and v1 reward functions, v1 judge plugin;
- :mod:`rftjudge.integrations.nova` — the Amazon Nova / Bedrock RFT reward Lambda handler;
- :mod:`rftjudge.integrations.checks` — deterministic pre-checks (non-empty, JSON schema).

Nothing is imported here, and no module imports its trainer: each works without it installed.
"""
