"""Where tracks come from: the simulated catalogue, dataset files, the Spotify Web API."""
