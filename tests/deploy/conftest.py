import pytest


@pytest.fixture(autouse=True)
def loopback_only():
    """Offer 127.0.0.1 only, so calls connect where loopback is the only interface."""
    import aioice.ice

    from receiver.ice import use_loopback_candidates

    original = aioice.ice.get_host_addresses
    use_loopback_candidates()
    yield
    aioice.ice.get_host_addresses = original
