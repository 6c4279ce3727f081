"""The IOMMU layer: io-pgtable, IOVA allocator, IOMMU API, dma-iommu and the SMMU driver."""
