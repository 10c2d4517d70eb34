"""collectors/policies"""
