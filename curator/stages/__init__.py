"""Map stages: pure Arrow batch -> batch functions, registered under the `curator.stages` entry points."""
