"""Subject models behind one interface (saeflow.models.base.SubjectModel)."""
