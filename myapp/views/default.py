from pyramid.view import view_config
from sqlalchemy import select

from .. import models
from ..jobs.presentation import format_time
from ..jobs.values import plain_number


@view_config(route_name='home', renderer='myapp:templates/home.jinja2')
def home(request):
    recent = request.dbsession.scalars(
        select(models.Calculation)
        .order_by(models.Calculation.id.desc()).limit(10)).all()
    return {'calculations': [calculation_for_page(c) for c in recent]}


def calculation_for_page(calculation):
    """Its sum as written (6, not 6.0), at a time in the configured zone."""
    return {'id': calculation.id, 'operation': calculation.operation,
            'operands': calculation.operands,
            'result': plain_number(calculation.result),
            'created_at': format_time(calculation.created_at)}
