"""Domain errors. Their class names are the error names the failover workflow retries or catches."""

from __future__ import annotations

from collections import Counter


class DcwatchError(Exception):
    """Base of every error dcwatch raises on purpose."""


class TransientError(DcwatchError):
    """Worth retrying: throttling, a dropped connection, a service briefly unavailable."""


class EntriesRefused(TransientError):
    """PutEvents still refused `lost` entries after every attempt; `sent` others made it to the bus."""

    def __init__(self, sent: int, lost: int, errors: Counter[str], attempts: int):
        self.sent, self.lost, self.errors = sent, lost, dict(errors)
        why = ", ".join(f"{code} x{n}" for code, n in errors.most_common())
        super().__init__(f"events:PutEvents refused {lost} entries after {attempts} attempts ({why})")


class StepInProgress(TransientError):
    """The same step of this run is still running in another invocation (or died there): retried past that
    invocation's deadline, when its idempotency record lapses, not within a few seconds."""


class StaleState(TransientError):
    """State was written by another writer since it was read: judged again from a fresh read."""


class InvalidRequest(DcwatchError):
    """A failover request that must not run; nothing has been changed."""


class DrillHeldBack(DcwatchError):
    """A scheduled drill is not run now (a site DOWN, the lock held, automation off, a maintenance window):
    nothing has been changed; the workflow records it as skipped."""


class StandbyNotReady(DcwatchError):
    """The standby cannot take over: its vCenter is unreachable or VMs of the plan are missing."""


class VcenterUnavailable(DcwatchError):
    """vCenter cannot be used: the base of its two typed faults, and what it answers that is not usable."""


class VcenterUnreachable(VcenterUnavailable):
    """No TCP connection to vCenter could be made: refused, a connect timeout, its name not resolved.

    The only vCenter fault that says nothing answers there; everything after a connection is another error."""


class VcenterRefused(VcenterUnavailable):
    """vCenter (or what stands for it) refused us: the login, the TLS handshake, or its credentials' secret.

    Someone answered, so the site may well be serving: never a sign that it is down."""


class SecretUnusable(DcwatchError):
    """A secret the config names (`headers_secret`) cannot be read, or is not what the config says it holds."""


class PowerOnFailed(DcwatchError):
    """vCenter reported a power-on task as failed."""


class GroupTimeout(DcwatchError):
    """A priority group was not up before its deadline."""


class ServiceNotVerified(DcwatchError):
    """A service check failed at the standby after power-on."""


class DnsTimeout(DcwatchError):
    """Route 53 did not report the change INSYNC before the deadline."""


class LeaseHeld(DcwatchError):
    """Another failover holds the lock: this one must not touch anything."""


class Superseded(DcwatchError):
    """Production already left the request's site (another recovery moved it meanwhile): nothing to do."""


class LeaseLost(DcwatchError):
    """The workflow's lease expired and another holder took it: stop before acting twice."""


class FencingIncomplete(DcwatchError):
    """The failed site's vCenter answers but its VMs are not off yet; retried, then a human decides."""


class ShutdownIncomplete(DcwatchError):
    """Migration or failback: VMs of the leaving site stay on after guest shutdown and power-off."""


class DrillCleanupIncomplete(DcwatchError):
    """A drill's clones are not gone yet; retried, then a human finishes the cleanup (`dcwatch drill --cleanup`)."""


class DrillCloneTimeout(DcwatchError):
    """A drill's clones were not ready within drill.clone_timeout_s: the drill stops and cleans up."""


class DrillCloneFailed(DcwatchError):
    """vCenter refused or failed to make or isolate a drill clone, or the drill's network, folder, resource pool
    or datastore is not at the site, or a clone is not isolated: the message names the VM (or the object) and why.
    The drill stops before any clone powers on, and cleans up."""


class NotADrillClone(DcwatchError):
    """A VM a drill was to change or destroy is not marked as a drill clone: refused, nothing done to it (a name
    mistake must never reach a production VM)."""


class ApprovalNotWaiting(DcwatchError):
    """An approve/deny for a workflow that no longer waits (answered, timed out, stopped) or a wrong token."""


class HookFailed(DcwatchError):
    """A hook declared `on_failure: stop` failed or timed out."""


class StorageNotSafe(DcwatchError):
    """The standby's storage mirror is out of sync beyond the allowed data-loss window; `force` overrides."""


class MirrorNotCaughtUp(DcwatchError):
    """Migration, failback: after the leaving site's shutdown the mirror still lags; retried, then refused."""
