"""The data path: every /predict request, from the client's connection to a model server and back."""
