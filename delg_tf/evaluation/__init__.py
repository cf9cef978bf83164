"""Metrics: Revisited Oxford/Paris (`revisited`: mAP, mP@k, the official protocols and kappas)
and GLDv2 (`gldv2_metrics`, `gldv2_io`: GAP and mAP@100 with the official CSV formats).
"""
