"""The SMMU's reference model and its test harness."""
