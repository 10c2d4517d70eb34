"""agents/world_model"""
