"""The judge: worse / not worse / inconclusive, per service and SLI, with its reasons. Pure."""
