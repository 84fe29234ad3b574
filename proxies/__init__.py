"""nas.proxies"""
