"""The HTML reports: the run's report (html, assembled from the sections_* modules, prose in text) and the
class report (class_report); figures drawn by figures, feeding_figures, mission_figures and class_figures."""
