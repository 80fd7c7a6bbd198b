"""One module per service: each turns validated settings into that service's :class:`ServiceSpec`."""
