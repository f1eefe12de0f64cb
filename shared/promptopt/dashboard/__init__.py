"""The web dashboard's server side: static assets, the page shell and its security headers."""
