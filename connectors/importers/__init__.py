"""Importers: captures made by other tools (cryptofeed, hftbacktest) turned into our recordings."""
