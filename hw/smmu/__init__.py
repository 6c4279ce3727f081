"""The SMMU: an Arm SMMUv3-style IOMMU (stream table, page-table walker, IOTLB, queues)."""
