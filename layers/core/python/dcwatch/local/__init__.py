"""The local runtime: the whole pipeline on one machine (moto, vcsim, demo services)."""
