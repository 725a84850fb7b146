"""Recovery: requests and plans, the failover workflow's steps, and how an execution ends."""
