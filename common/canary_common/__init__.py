"""Code shared by the Canary services: the dataset generator and the registry client."""
